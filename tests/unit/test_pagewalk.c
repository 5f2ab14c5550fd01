/*
 * test_pagewalk.c - store/pagewalk.h's structural check of an LMDB file, and store_open's use
 * of it: a store whose pages do not parse is refused before LMDB follows them.
 *
 * LMDB trusts its pages: a byte flipped in a branch, leaf or free-list page sends it to a wild
 * offset, size or page number, and the process dies of SIGBUS or SIGSEGV. The shim rides in
 * agents that must never die of it (DESIGN.md rule 1). So most cases here damage a real store
 * (built with store_append) the way tests/integration/test_failopen.py does, 8 spans of 16
 * random bytes past the meta pages, and let a forked child do what the shim and the CLI do
 * with it: the child must end normally, never by a signal. Exact cases then damage one field
 * of one page and want STORE_EFORMAT with the reason the check gives.
 */
#include <fcntl.h>
#include <ftw.h>
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/pagewalk.h"
#include "store/store.h"
#include "tests/unit/check.h"
#include "tests/unit/tmpdir.h"

#define PSIZE 4096

/* Removes path and its "-lock" file. */
static void store_unlink(const char *path)
{
	char lock[600];

	snprintf(lock, sizeof lock, "%s-lock", path);
	unlink(path);
	unlink(lock);
}

/* A record numbered k, with names that repeat every 7 records (the strings table's shape). */
static void record_fill(struct record *r, int k)
{
	static char strs[4][64];

	memset(r, 0, sizeof(*r));
	r->ts_ns = 1700000000000000000ll + (int64_t)k * 1000;
	r->latency_us = 1000 + k;
	r->ttfb_us = -1;
	r->pid = 4242;
	r->status = 200;
	r->input_tokens = 1000 + k;
	r->output_tokens = 2000 + k;
	snprintf(strs[0], sizeof strs[0], "agent-%d", k % 7);
	snprintf(strs[1], sizeof strs[1], "model-%d", k % 3);
	snprintf(strs[2], sizeof strs[2], "session-%d", k / 50);
	snprintf(strs[3], sizeof strs[3], "/v1/chat/completions");
	r->agent = record_str_of(strs[0]);
	r->model = record_str_of(strs[1]);
	r->session = record_str_of(strs[2]);
	r->path = record_str_of(strs[3]);
	r->provider = record_str_of("openai");
	r->host = record_str_of("api.openai.com");
}

/* xorshift64: the damage of trial n is the same on every run. */
static uint64_t rnd_next(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/*
 * Builds a store of n records at path through the real API; every payload_every-th record
 * (0: none) carries a payload, of noise_len incompressible bytes on record 1 (overflow pages)
 * and small text on the others. Returns the file's size, 0 on failure.
 */
static off_t build_store(const char *path, int n, int payload_every, size_t noise_len)
{
	static char noise[20000];
	struct store *st = NULL;
	struct payload pl;
	struct record r;
	struct stat sb;
	uint64_t x = 88172645463325252ull;
	int rc = 0;

	for (size_t i = 0; i < sizeof noise; i++)
		noise[i] = (char)(rnd_next(&x) & 0xff);
	CHECK_INT(store_open(&st, path, STORE_CREATE, 0), 0);
	if (st == NULL)
		return 0;
	for (int k = 0; k < n && rc == 0; k++) {
		memset(&pl, 0, sizeof pl);
		pl.req_head = record_str_of("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n");
		pl.req_body = record_str_of("{\"model\":\"gpt-4o\",\"messages\":[]}");
		if (k == 0 && noise_len)
			pl.resp_body = (struct record_str){ noise, noise_len, 0 };
		else
			pl.resp_body = record_str_of("{\"usage\":{\"prompt_tokens\":3}}");
		record_fill(&r, k);
		rc = store_append(st, &r, payload_every && k % payload_every == 0 ? &pl : NULL,
				  NULL, 0);
	}
	CHECK_INT(rc, 0);
	store_close(st);
	CHECK_INT(stat(path, &sb), 0);
	return sb.st_size;
}

static int copy_file(const char *from, const char *to)
{
	char buf[65536];
	int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ssize_t n = 0;
	int rc = in >= 0 && out >= 0 ? 0 : -1;

	while (rc == 0 && (n = read(in, buf, sizeof buf)) > 0)
		rc = write(out, buf, (size_t)n) == n ? 0 : -1;
	if (n < 0)
		rc = -1;
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return rc;
}

/* Writes len random bytes at each of spans random offsets in [2 pages, size - len). */
static void damage(const char *path, off_t size, int spans, size_t len, uint64_t *x)
{
	unsigned char junk[64];
	int fd = open(path, O_RDWR);

	CHECK(fd >= 0 && len <= sizeof junk && size > 2 * PSIZE + (off_t)len);
	if (fd < 0)
		return;
	for (int s = 0; s < spans; s++) {
		off_t off = 2 * PSIZE + (off_t)(rnd_next(x) % (uint64_t)(size - 2 * PSIZE - len));

		for (size_t i = 0; i < len; i++)
			junk[i] = (unsigned char)(rnd_next(x) >> 24);
		CHECK_INT(pwrite(fd, junk, len, off), (long)len);
	}
	close(fd);
}

static int count_record(const struct record *r, void *arg)
{
	(void)r;
	++*(int *)arg;
	return 0;
}

/* The shim's use: open as a writer (creating), append a record with its payload and a
 * counter, close. Exit status 0 either way. */
static void child_writer(const char *path)
{
	struct store_counter_delta d = { "dropped.parse_error", 1 };
	struct store *st = NULL;
	struct payload pl;
	struct record r;

	memset(&pl, 0, sizeof pl);
	pl.resp_body = record_str_of("{\"usage\":{\"prompt_tokens\":3}}");
	if (store_open(&st, path, STORE_CREATE, 0) == 0) {
		record_fill(&r, 1000000);
		(void)store_append(st, &r, &pl, &d, 1);
		store_close(st);
	}
	_exit(0);
}

/* The CLI's use: open as a reader, scan, read payloads, verify. Exit status 0 either way. */
static void child_reader(const char *path)
{
	struct store *st = NULL;
	struct payload pl;
	uint64_t problems;
	int n = 0;

	if (store_open(&st, path, STORE_READONLY, 0) == 0) {
		(void)store_scan(st, 0, INT64_MAX, count_record, &n);
		for (uint64_t id = 1; id <= 8; id++)
			if (store_payload_get(st, id, &pl) == 0)
				payload_release(&pl);
		(void)store_verify(st, NULL, NULL, &problems);
		store_close(st);
	}
	_exit(0);
}

/* Runs fn(path) in a child; returns its wait status. */
static int in_child(void (*fn)(const char *), const char *path)
{
	int status = -1;
	pid_t kid = fork();

	if (kid == 0)
		fn(path);
	if (kid > 0)
		waitpid(kid, &status, 0);
	return status;
}

/* pagewalk_check on the file at path, cap pages. */
static int check_file(const char *path, uint64_t cap, struct pagewalk_report *rep)
{
	int fd = open(path, O_RDONLY), rc;

	rc = pagewalk_check(fd, PSIZE, cap, rep);
	close(fd);
	return rc;
}

/* trials damaged copies of a store of n records; each is opened by a writer and a reader. */
static void random_damage(int n, int payload_every, size_t noise_len, int trials, uint64_t seed)
{
	const char *base = tmp_path("base.mdb"), *trial = tmp_path("trial.mdb");
	off_t size = build_store(base, n, payload_every, noise_len);
	int killed = 0, refused = 0;

	for (int t = 0; t < trials && size > 0; t++) {
		uint64_t x = seed * 0x9e3779b97f4a7c15ull + (uint64_t)t + 1;
		struct pagewalk_report rep;
		int status[2];

		CHECK_INT(copy_file(base, trial), 0);
		damage(trial, size, 8, 16, &x);
		refused += check_file(trial, PAGEWALK_CAP, &rep) == STORE_EFORMAT;
		status[0] = in_child(child_writer, trial);
		status[1] = in_child(child_reader, trial);
		for (int i = 0; i < 2; i++) {
			if (!WIFEXITED(status[i])) {
				fprintf(stderr, "%d records, trial %d: %s killed (status 0x%x)\n", n,
					t, i ? "reader" : "writer", status[i]);
				killed++;
			}
		}
		store_unlink(trial);
	}
	CHECK_INT(killed, 0);
	/* Much of the damage lands in free pages, free space inside pages, or record bytes (the
	 * decoders' business); what lands in a tree's structure must be seen. */
	CHECK(refused > trials / 20);
}

/* The integration test's store: 4 records, each with its payload. */
static void test_random_damage_4(void)
{
	random_damage(4, 1, 0, 300, 1);
}

/* Deeper trees: branch pages, an overflow run, a free list from many commits. */
static void test_random_damage_500(void)
{
	random_damage(500, 3, 9000, 150, 2);
}

/* ---- exact cases: one field of one page --------------------------------------------------- */

/* Offsets of LMDB 0.9's layout (store/pagewalk.c has the same, with what they mean). */
#define META_FREE_ROOT 80
#define META_MAIN_DEPTH 94
#define META_MAIN_ROOT 128
#define META_LAST 136
#define META_TXNID 144
#define DB_DEPTH 6
#define DB_ROOT 40
#define P_INVALID UINT64_MAX

static uint16_t get16(const unsigned char *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return v;
}

static uint64_t get64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static void page_get(const char *path, uint64_t pgno, unsigned char *page)
{
	int fd = open(path, O_RDONLY);

	CHECK_INT(pread(fd, page, PSIZE, (off_t)(pgno * PSIZE)), PSIZE);
	close(fd);
}

static void page_put(const char *path, uint64_t pgno, const unsigned char *page)
{
	int fd = open(path, O_WRONLY);

	CHECK_INT(pwrite(fd, page, PSIZE, (off_t)(pgno * PSIZE)), PSIZE);
	close(fd);
}

/* Node i's offset in a branch or leaf page; its key follows its 8-byte header. */
static size_t node_off(const unsigned char *page, size_t i)
{
	return get16(page + 16 + 2 * i);
}

static size_t node_count(const unsigned char *page)
{
	return (get16(page + 12) - 16u) / 2;
}

static uint64_t child_of(const unsigned char *page, size_t i)
{
	const unsigned char *n = page + node_off(page, i);

	return (uint64_t)get16(n) | (uint64_t)get16(n + 2) << 16 | (uint64_t)get16(n + 4) << 32;
}

/* From page pgno, child i at each branch (i < 0: the last) down to a leaf. */
static uint64_t descend(const char *path, uint64_t pgno, int i)
{
	unsigned char page[PSIZE];

	for (page_get(path, pgno, page); get16(page + 10) == 0x01; page_get(path, pgno, page))
		pgno = child_of(page, i < 0 ? node_count(page) - 1 : (size_t)i);
	return pgno;
}

/* Where the test store keeps what the cases damage. */
struct layout {
	uint64_t meta;         /* the current meta page (0 or 1) */
	uint64_t last;         /* its last page */
	uint64_t main_root;    /* the main database: one leaf */
	uint64_t free_leaf;    /* the free list's first leaf */
	size_t records_db;     /* offset of records' MDB_db in the main leaf */
	uint64_t records_root; /* a branch page */
	uint64_t records_mid;  /* a leaf of records neither first nor last */
	uint64_t overflow;     /* the run of record 1's payload (ids) */
};

/* The offset in page of the value of key name (a leaf), 0 when absent. */
static size_t value_of(const unsigned char *page, const char *name)
{
	size_t len = strlen(name), off;

	for (size_t i = 0; i < node_count(page); i++) {
		off = node_off(page, i);
		if (get16(page + off + 6) == len && memcmp(page + off + 8, name, len) == 0)
			return off + 8 + len;
	}
	return 0;
}

static void layout_read(const char *path, struct layout *l)
{
	unsigned char m[2][PSIZE], page[PSIZE];
	size_t ids;

	page_get(path, 0, m[0]);
	page_get(path, 1, m[1]);
	l->meta = get64(m[1] + META_TXNID) > get64(m[0] + META_TXNID);
	l->last = get64(m[l->meta] + META_LAST);
	l->main_root = get64(m[l->meta] + META_MAIN_ROOT);
	CHECK_INT(get16(m[l->meta] + META_MAIN_DEPTH), 1);
	CHECK(get64(m[l->meta] + META_FREE_ROOT) != P_INVALID);
	l->free_leaf = descend(path, get64(m[l->meta] + META_FREE_ROOT), 0);
	page_get(path, l->main_root, page);
	l->records_db = value_of(page, "records");
	ids = value_of(page, "ids");
	CHECK(l->records_db != 0 && ids != 0);
	l->records_root = get64(page + l->records_db + DB_ROOT);
	l->overflow = descend(path, get64(page + ids + DB_ROOT), 0);
	page_get(path, l->records_root, page);
	CHECK_INT(get16(page + 10), 0x01);
	CHECK(node_count(page) >= 3);
	l->records_mid = descend(path, child_of(page, node_count(page) / 2), 0);
	/* Record 1's ids entry: node 0 of the first leaf, in an overflow run (F_BIGDATA). */
	page_get(path, l->overflow, page);
	CHECK_INT(get16(page + node_off(page, 0) + 4), 0x01);
	l->overflow = get64(page + node_off(page, 0) + 8 + 8);
}

/* One case: what to change on which page, and the reason pagewalk_check must give. */
struct damage_case {
	const char *name;
	void (*mutate)(const char *path, const struct layout *l);
	const char *why;
};

static void leaf_node_past_page(const char *path, const struct layout *l)
{
	unsigned char page[PSIZE];
	uint16_t off = PSIZE - 4;

	page_get(path, l->main_root, page);
	memcpy(page + 16, &off, 2);
	page_put(path, l->main_root, page);
}

static void free_count_overruns(const char *path, const struct layout *l)
{
	unsigned char page[PSIZE];
	size_t off, dsize;
	uint64_t n;

	page_get(path, l->free_leaf, page);
	off = node_off(page, 0);
	CHECK_INT(get16(page + off + 4), 0); /* inline, not in an overflow run */
	dsize = get16(page + off);
	n = dsize / 8; /* one more page number than the value holds */
	memcpy(page + off + 8 + 8, &n, 8);
	page_put(path, l->free_leaf, page);
}

static void free_page_past_last(const char *path, const struct layout *l)
{
	unsigned char page[PSIZE];
	size_t off;
	uint64_t n, pg = l->last + 1;

	page_get(path, l->free_leaf, page);
	off = node_off(page, 0);
	n = get64(page + off + 16);
	CHECK(n >= 1);
	memcpy(page + off + 16 + 8, &pg, 8);
	page_put(path, l->free_leaf, page);
}

/* Child 1 of records' root set to pg. */
static void set_child(const char *path, const struct layout *l, uint64_t pg)
{
	unsigned char page[PSIZE];
	size_t off;
	uint16_t w[3] = { (uint16_t)pg, (uint16_t)(pg >> 16), (uint16_t)(pg >> 32) };

	page_get(path, l->records_root, page);
	off = node_off(page, 1);
	memcpy(page + off, w, sizeof w);
	page_put(path, l->records_root, page);
}

static void branch_child_past_last(const char *path, const struct layout *l)
{
	set_child(path, l, l->last + 1);
}

static void branch_child_twice(const char *path, const struct layout *l)
{
	unsigned char page[PSIZE];

	page_get(path, l->records_root, page);
	set_child(path, l, child_of(page, 2));
}

static void branch_child_cycle(const char *path, const struct layout *l)
{
	set_child(path, l, l->records_root);
}

static void sub_root_past_last(const char *path, const struct layout *l)
{
	unsigned char page[PSIZE];
	uint64_t root = l->last + 1;

	page_get(path, l->main_root, page);
	memcpy(page + l->records_db + DB_ROOT, &root, 8);
	page_put(path, l->main_root, page);
}

/* records' count of kind (8: branch, 16: leaf, 24: overflow pages) set to n. */
static void set_count(const char *path, const struct layout *l, size_t kind, uint64_t n)
{
	unsigned char page[PSIZE];

	page_get(path, l->main_root, page);
	memcpy(page + l->records_db + kind, &n, 8);
	page_put(path, l->main_root, page);
}

/* A depth-2 tree counted past the cap is walked along its ends: its root shows the lie. */
static void sub_leaves_inflated(const char *path, const struct layout *l)
{
	set_count(path, l, 16, PAGEWALK_CAP + 1);
}

static void sub_pages_past_file(const char *path, const struct layout *l)
{
	set_count(path, l, 24, 1ull << 40);
}

static void sub_depth_wrong(const char *path, const struct layout *l)
{
	unsigned char page[PSIZE];
	uint16_t depth;

	page_get(path, l->main_root, page);
	depth = (uint16_t)(get16(page + l->records_db + DB_DEPTH) + 1);
	memcpy(page + l->records_db + DB_DEPTH, &depth, 2);
	page_put(path, l->main_root, page);
}

static void page_number_field(const char *path, const struct layout *l)
{
	unsigned char page[PSIZE];
	uint64_t other = l->records_mid + 1;

	page_get(path, l->records_mid, page);
	memcpy(page, &other, 8);
	page_put(path, l->records_mid, page);
}

static void bounds_swapped(const char *path, const struct layout *l)
{
	unsigned char page[PSIZE];
	uint16_t upper = 20;

	page_get(path, l->records_mid, page);
	memcpy(page + 14, &upper, 2);
	page_put(path, l->records_mid, page);
}

static void key_past_page(const char *path, const struct layout *l)
{
	unsigned char page[PSIZE];
	size_t off;
	uint16_t ksize = 511;

	page_get(path, l->records_mid, page);
	off = node_off(page, 0);
	for (size_t i = 1; i < node_count(page); i++)
		off = node_off(page, i) > off ? node_off(page, i) : off;
	CHECK(off + 8 + 511 > PSIZE); /* the node nearest the page's end */
	memcpy(page + off + 6, &ksize, 2);
	page_put(path, l->records_mid, page);
}

static void value_past_page(const char *path, const struct layout *l)
{
	unsigned char page[PSIZE];
	uint16_t hi = 1; /* data size + 64 KiB */

	page_get(path, l->records_mid, page);
	memcpy(page + node_off(page, 0) + 2, &hi, 2);
	page_put(path, l->records_mid, page);
}

static void overflow_run_short(const char *path, const struct layout *l)
{
	unsigned char page[PSIZE];
	uint32_t pages = 1; /* 9,000 bytes need 3 */

	page_get(path, l->overflow, page);
	memcpy(page + 12, &pages, 4);
	page_put(path, l->overflow, page);
}

static void overflow_flags(const char *path, const struct layout *l)
{
	unsigned char page[PSIZE];
	uint16_t flags = 0x02;

	page_get(path, l->overflow, page);
	memcpy(page + 10, &flags, 2);
	page_put(path, l->overflow, page);
}

static const struct damage_case damage_cases[] = {
	{ "leaf node offset past the page", leaf_node_past_page, "node outside the page" },
	{ "free-list count overruns its value", free_count_overruns,
	  "free-list count past its value" },
	{ "free page past the last page", free_page_past_last, "free page outside the file's pages" },
	{ "branch child past the last page", branch_child_past_last,
	  "branch child outside the file's pages" },
	{ "branch child named twice", branch_child_twice, "page reached twice" },
	{ "branch child is its parent", branch_child_cycle, "page reached twice" },
	{ "sub-database root past the last page", sub_root_past_last,
	  "named database root outside the file's pages" },
	{ "sub-database leaf count past the cap", sub_leaves_inflated,
	  "page counts of its record disagree with the tree" },
	{ "sub-database page count past the file", sub_pages_past_file,
	  "page counts of its record disagree with the tree" },
	{ "sub-database depth off by one", sub_depth_wrong,
	  "page at the wrong level for its tree's depth" },
	{ "page number field", page_number_field, "page number differs from its place" },
	{ "upper bound below lower", bounds_swapped, "page bounds out of order" },
	{ "key size past the page", key_past_page, "key outside the page" },
	{ "value size past the page", value_past_page, "value outside the page" },
	{ "overflow run shorter than its value", overflow_run_short,
	  "overflow run shorter than its value" },
	{ "overflow page flags", overflow_flags, "not an overflow page" },
};

static const char *clean_store(void)
{
	static char path[512];

	if (path[0] == '\0') {
		snprintf(path, sizeof path, "%s", tmp_path("clean.mdb"));
		build_store(path, 1000, 10, 9000);
	}
	return path;
}

/* Each case on a copy of the clean store: the reason, and both kinds of open refused. */
static void test_exact_damage(void)
{
	const char *base = clean_store(), *path = tmp_path("case.mdb");
	struct pagewalk_report rep;
	struct store *st = NULL;
	struct layout l;

	layout_read(base, &l);
	for (size_t i = 0; i < sizeof damage_cases / sizeof damage_cases[0]; i++) {
		const struct damage_case *c = &damage_cases[i];
		int rc;

		CHECK_INT(copy_file(base, path), 0);
		c->mutate(path, &l);
		rc = check_file(path, PAGEWALK_CAP, &rep);
		if (rc != STORE_EFORMAT || rep.why == NULL || strcmp(rep.why, c->why) != 0) {
			fprintf(stderr, "%s: %s, '%s' on page %llu\n", c->name, store_strerror(rc),
				rep.why ? rep.why : "", (unsigned long long)rep.bad_pgno);
			check_case_failed = 1;
		}
		CHECK_INT(store_open(&st, path, STORE_CREATE, 0), STORE_EFORMAT);
		CHECK_STR(store_last_error(), mdb_strerror(MDB_CORRUPTED));
		CHECK_INT(store_open(&st, path, STORE_READONLY, 0), STORE_EFORMAT);
		store_unlink(path);
	}
}

/* A clean store of 1000 records: no problem found, by the check or by store_verify. */
static void test_clean(void)
{
	const char *path = clean_store();
	struct pagewalk_report whole, ends;
	struct store *st = NULL;
	struct record r;
	uint64_t problems = 99;

	CHECK_INT(check_file(path, PAGEWALK_CAP, &whole), 0);
	CHECK(whole.why == NULL);
	CHECK_INT(whole.bounded, 0);
	/* free list, main, and of the named ones at least meta, records, ids, strings */
	CHECK(whole.trees >= 6);
	CHECK(whole.last_pgno > 30 && whole.txnid >= 1000);
	/* Every named database along its ends only: fewer pages, the same trees. */
	CHECK_INT(check_file(path, 0, &ends), 0);
	CHECK_INT(ends.trees, whole.trees);
	CHECK_INT(ends.bounded, whole.trees - 2);
	CHECK(ends.pages < whole.pages);

	CHECK_INT(store_open(&st, path, STORE_CREATE, 0), 0);
	record_fill(&r, 1000);
	CHECK_INT(store_append(st, &r, NULL, NULL, 0), 0);
	store_close(st);
	CHECK_INT(store_open(&st, path, STORE_READONLY, 0), 0);
	CHECK_INT(store_verify(st, NULL, NULL, &problems), 0);
	CHECK_INT(problems, 0);
	store_close(st);
	CHECK_INT(check_file(path, PAGEWALK_CAP, &whole), 0);
}

/* What a bounded walk leaves out: a leaf in the middle of a large database. */
static void test_bounded_leaves_middle(void)
{
	const char *path = tmp_path("middle.mdb");
	struct pagewalk_report rep;
	struct layout l;

	CHECK_INT(copy_file(clean_store(), path), 0);
	layout_read(path, &l);
	page_number_field(path, &l);
	CHECK_INT(check_file(path, 0, &rep), 0);
	CHECK_INT(check_file(path, UINT64_MAX, &rep), STORE_EFORMAT);
	CHECK_INT(rep.bad_pgno, l.records_mid);
	/* The ends are walked: the first leaf and the last. */
	for (int end = 0; end < 2; end++) {
		uint64_t leaf = descend(path, l.records_root, end ? -1 : 0);
		unsigned char page[PSIZE];

		CHECK_INT(copy_file(clean_store(), path), 0);
		page_get(path, leaf, page);
		page[0] ^= 1;
		page_put(path, leaf, page);
		CHECK_INT(check_file(path, 0, &rep), STORE_EFORMAT);
		CHECK_INT(rep.bad_pgno, leaf);
	}
	store_unlink(path);
}

/* A writer appending in another process all along: no open refuses the store. */
static void test_busy_store(void)
{
	const char *path = tmp_path("busy.mdb");
	struct pagewalk_report rep;
	struct store *st = NULL;
	int status = -1, refused = 0, opens = 0;
	pid_t kid;

	CHECK(build_store(path, 300, 2, 0) > 0);
	kid = fork();
	if (kid == 0) {
		struct record r;
		int rc = store_open(&st, path, 0, 0);

		for (int k = 0; rc == 0 && k < 3000; k++) {
			record_fill(&r, k);
			rc = store_append(st, &r, NULL, NULL, 0);
		}
		store_close(st);
		_exit(rc == 0 ? 0 : 1);
	}
	while (kid > 0 && waitpid(kid, &status, WNOHANG) == 0) {
		unsigned fl = opens % 2 ? STORE_READONLY : 0;
		int rc = store_open(&st, path, fl, 0);

		if (rc != 0) {
			fprintf(stderr, "open %d: %s\n", opens, store_strerror(rc));
			refused++;
		}
		store_close(st);
		opens++;
	}
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(opens > 10);
	CHECK_INT(refused, 0);
	CHECK_INT(check_file(path, PAGEWALK_CAP, &rep), 0);
}

/* pagewalk_reaches, as store_check_size calls it: the walk it shares with the check. */
static void test_reaches(void)
{
	const char *path = clean_store();
	struct pagewalk_report rep;
	int fd = open(path, O_RDONLY), reaches = -1;

	CHECK_INT(pagewalk_check(fd, PSIZE, PAGEWALK_CAP, &rep), 0);
	CHECK_INT(pagewalk_reaches(fd, PSIZE, rep.txnid, rep.last_pgno + 1, &reaches), 0);
	CHECK_INT(reaches, 0);
	CHECK_INT(pagewalk_reaches(fd, PSIZE, rep.txnid, rep.last_pgno / 2, &reaches), 0);
	CHECK_INT(reaches, 1);
	CHECK_INT(pagewalk_reaches(fd, PSIZE, rep.txnid + 1, rep.last_pgno + 1, &reaches),
		  STORE_EFORMAT);
	CHECK_INT(pagewalk_check(fd, 100, PAGEWALK_CAP, &rep), STORE_EFORMAT);
	close(fd);
}

int main(void)
{
	if (tmpdir_make("test-pagewalk") != 0)
		return 2;
	RUN(test_clean);
	RUN(test_exact_damage);
	RUN(test_bounded_leaves_middle);
	RUN(test_reaches);
	RUN(test_busy_store);
	RUN(test_random_damage_4);
	RUN(test_random_damage_500);
	tmpdir_remove();
	CHECK_DONE();
}
