/*
 * pagewalk.c - reads an LMDB file's B-tree pages with pread and tells whether they parse.
 *
 * LMDB trusts its pages. A byte flipped in a branch, leaf or free-list page sends it to a
 * wild offset, size or page number, and the process dies of SIGBUS or SIGSEGV (seen in
 * mdb_dbi_open, mdb_midl_xmerge on a free-list value, cursor walks, mdb_put). The shim rides
 * in agents that must never die of the store, so store_open walks the trees first, reading
 * with pread, never through LMDB's map, where a bad page is an answer rather than a signal
 * (pagewalk_check).
 *
 * The same walk answers a second question (pagewalk_reaches). LMDB counts in its meta page
 * the pages a transaction allocated and freed again without ever writing them ("loose"
 * pages), so a writer killed between its commit and store_fill_tail leaves a file shorter
 * than the meta says, with nothing but free pages missing. A file cut short by damage looks
 * the same from the outside. Only the trees tell them apart: the first loses no page any tree
 * points to.
 *
 * The layout read here is LMDB 0.9's (store/lmdbpage.h; mdb.c for what LMDB reads without
 * checking). Anything else is damage.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/lmdbpage.h"
#include "store/pagewalk.h"
#include "store/store.h"

/* An ID list: a count, then that many page numbers. */
#define PW_ID 8
/* Walks of a changing file that pagewalk_check makes before it believes damage. */
#define PW_ATTEMPTS 3

/* An MDB_db: where a tree starts, and what its record says of it. */
struct pw_db {
	uint64_t root;
	uint64_t branch, leaf, overflow; /* the pages it counts of each kind */
	uint64_t pages;                  /* their sum, saturated at UINT64_MAX */
	unsigned depth;
	unsigned flags;
	uint64_t from; /* the page holding the record: a meta page or a main-database leaf */
};

/* The meta walked, and its bytes from the MDB_db records to the txnid (what a commit
 * rewrites), to see whether a writer has committed since. */
struct pw_meta {
	uint64_t pgno, txnid, last;
	struct pw_db free_db, main_db;
	unsigned char raw[LP_META_END - LP_META_DBS];
};

enum pw_kind { PW_FREE, PW_MAIN, PW_NAMED };

/* On a bounded walk, the ends of the tree a page lies on: its first path, its last. */
#define PW_LEFT 1u
#define PW_RIGHT 2u

/* A page to read: its number, its level (the root's is 1), the ends it lies on. */
struct pw_entry {
	uint64_t pgno;
	uint32_t level;
	uint32_t ends;
};

/* One tree's walk. */
struct pw_tree {
	const struct pw_db *db;
	enum pw_kind kind;
	int bounded;
	uint64_t reads;
};

struct pagewalk {
	int fd;
	size_t psize;
	uint64_t cap;
	uint64_t end;   /* the meta's last page + 1: a page number at or past it is damage */
	uint64_t limit; /* pages at or past it are not read: the file's end, or the caller's */
	int reaching;   /* pagewalk_reaches: a page at or past the limit is its answer */
	int reaches;
	unsigned char *page;    /* the page being parsed */
	unsigned char *scratch; /* a page's worth of an overflow value */
	uint64_t *seen;         /* pages [0, limit) reached so far, a bit each */
	struct pw_entry *stack;
	size_t n, stack_cap;
	struct pw_db *subs; /* named databases met in the main database's leaves */
	size_t nsubs, subs_cap;
	struct pagewalk_report *rep;
};

/* Notes what is wrong and where; returns STORE_EFORMAT. */
static int pw_damage(struct pagewalk *pw, uint64_t pgno, const char *why)
{
	pw->rep->bad_pgno = pgno;
	pw->rep->why = why;
	return STORE_EFORMAT;
}

/*
 * Pages [first, first + count), named in page from: past the meta pages and before the
 * meta's end, else damage (why). At or past the limit, they end a pagewalk_reaches walk
 * (pw->reaches) and are damage for pagewalk_check: every page of the meta's trees was written
 * before the meta was, so the file holds them all.
 */
static int pw_range(struct pagewalk *pw, uint64_t from, uint64_t first, uint64_t count,
		    const char *why)
{
	int rc = 0;

	if (first < LP_NUM_METAS || first >= pw->end || count > pw->end - first)
		rc = pw_damage(pw, from, why);
	else if ((first >= pw->limit || count > pw->limit - first) && pw->reaching)
		pw->reaches = 1;
	else if (first >= pw->limit || count > pw->limit - first)
		rc = pw_damage(pw, from, "page past the end of the file");
	return rc;
}

/* Marks pages [first, first + count) reached (all below the limit): twice is damage. */
static int pw_mark(struct pagewalk *pw, uint64_t first, uint64_t count)
{
	int rc = 0;

	for (uint64_t pg = first; pg < first + count && rc == 0; pg++) {
		uint64_t bit = 1ull << (pg % 64);

		if (pw->seen[pg / 64] & bit)
			rc = pw_damage(pw, pg, "page reached twice");
		pw->seen[pg / 64] |= bit;
	}
	return rc;
}

/* Reads page pgno into pw->page. A short read is damage (the file ends before it). */
static int pw_read(struct pagewalk *pw, uint64_t pgno)
{
	ssize_t got = pread(pw->fd, pw->page, pw->psize, (off_t)(pgno * pw->psize));

	return got == (ssize_t)pw->psize ? 0 : pw_damage(pw, pgno, "page past the end of the file");
}

/* Counts one page read for tree t; a whole walk past the cap means the record's counts lie. */
static int pw_count(struct pagewalk *pw, struct pw_tree *t, uint64_t pgno)
{
	int rc = 0;

	pw->rep->pages++;
	if (t->kind == PW_NAMED && !t->bounded && ++t->reads > pw->cap)
		rc = pw_damage(pw, pgno, "tree larger than its record says");
	return rc;
}

/* Queues page pgno, at level, on the given ends of its tree, to be read. */
static int pw_push(struct pagewalk *pw, uint64_t pgno, uint32_t level, uint32_t ends)
{
	struct pw_entry *grown;
	size_t cap = pw->stack_cap ? pw->stack_cap * 2 : 64;
	int rc = 0;

	/* The stack holds the unread siblings along one path: at most LP_DEPTH_MAX pages' worth
	 * of node offsets. */
	if (pw->n == pw->stack_cap && pw->stack_cap >= LP_DEPTH_MAX * pw->psize / 2)
		rc = pw_damage(pw, pgno, "tree too wide");
	if (rc == 0 && pw->n == pw->stack_cap) {
		grown = realloc(pw->stack, cap * sizeof *grown);
		if (grown == NULL) {
			rc = STORE_ENOMEM;
		} else {
			pw->stack = grown;
			pw->stack_cap = cap;
		}
	}
	if (rc == 0)
		pw->stack[pw->n++] = (struct pw_entry){ pgno, level, ends };
	return rc;
}

/* Parses the 48-byte MDB_db at p, held by page from. */
static void pw_db_parse(const unsigned char *p, uint64_t from, struct pw_db *db)
{
	uint64_t n[3], pages = 0;

	for (int i = 0; i < 3; i++) {
		n[i] = lp_u64(p + LP_DB_BRANCH + 8 * i);
		pages = n[i] > UINT64_MAX - pages ? UINT64_MAX : pages + n[i];
	}
	db->root = lp_u64(p + LP_DB_ROOT);
	db->branch = n[0];
	db->leaf = n[1];
	db->overflow = n[2];
	db->pages = pages;
	db->depth = lp_u16(p + LP_DB_DEPTH);
	db->flags = lp_u16(p + LP_DB_FLAGS);
	db->from = from;
}

/*
 * len bytes at offset off of a value: in the page (inl), else in the overflow run at ov
 * (read into pw->scratch, len at most a page). *out points to them.
 */
static int pw_value(struct pagewalk *pw, const unsigned char *inl, uint64_t ov, size_t off,
		    size_t len, const unsigned char **out)
{
	off_t at = (off_t)(ov * pw->psize + LP_PAGEHDR + off);
	int rc = 0;

	*out = inl != NULL ? inl + off : pw->scratch;
	if (inl == NULL && pread(pw->fd, pw->scratch, len, at) != (ssize_t)len)
		rc = pw_damage(pw, ov, "page past the end of the file");
	return rc;
}

/*
 * A free-list value of dsize bytes (in the page at inl, else in the run at ov), held by page
 * pgno: an LMDB ID list. LMDB reads its count and that many page numbers (mdb_page_alloc,
 * mdb_midl_xmerge), and hands those pages out. The count must fit the value, not fill it:
 * mdb_freelist_save reserves values, then writes shorter lists into some of them.
 */
static int pw_idl(struct pagewalk *pw, uint64_t pgno, const unsigned char *inl, uint64_t ov,
		  size_t dsize)
{
	const unsigned char *v;
	size_t per = pw->psize / PW_ID, k;
	uint64_t n = 0, id;
	int rc = 0;

	if (dsize < PW_ID)
		rc = pw_damage(pw, pgno, "free-list value shorter than its count");
	if (rc == 0)
		rc = pw_value(pw, inl, ov, 0, PW_ID, &v);
	if (rc == 0)
		n = lp_u64(v);
	if (rc == 0 && n > dsize / PW_ID - 1)
		rc = pw_damage(pw, pgno, "free-list count past its value");
	for (uint64_t done = 0; rc == 0 && done < n; done += k) {
		k = n - done < per ? (size_t)(n - done) : per;
		rc = pw_value(pw, inl, ov, PW_ID + (size_t)done * PW_ID, k * PW_ID, &v);
		for (size_t j = 0; rc == 0 && j < k; j++) {
			id = lp_u64(v + j * PW_ID);
			if (id < LP_NUM_METAS || id >= pw->end)
				rc = pw_damage(pw, pgno, "free page outside the file's pages");
		}
	}
	return rc;
}

/*
 * The overflow run at ov holding a value of dsize bytes, named in page from: an overflow page
 * with its own number, of at least one page, big enough for the value, before the end. Only
 * its first page's header is read, so pw->page stays as it is.
 */
static int pw_overflow(struct pagewalk *pw, struct pw_tree *t, uint64_t from, uint64_t ov,
		       uint64_t dsize)
{
	unsigned char head[LP_PAGEHDR];
	uint32_t pages;
	int rc;

	rc = pw_range(pw, from, ov, 1, "overflow page outside the file's pages");
	if (rc != 0 || pw->reaches)
		goto out;
	rc = pread(pw->fd, head, sizeof head, (off_t)(ov * pw->psize)) == (ssize_t)sizeof head
		     ? pw_count(pw, t, ov)
		     : pw_damage(pw, ov, "page past the end of the file");
	if (rc != 0)
		goto out;
	pages = lp_u32(head + LP_OVERFLOW_PAGES_OFF);
	if (lp_u64(head) != ov)
		rc = pw_damage(pw, ov, "page number differs from its place");
	else if (lp_u16(head + LP_FLAGS_OFF) != LP_OVERFLOW)
		rc = pw_damage(pw, ov, "not an overflow page");
	else if (pages == 0 || (uint64_t)pages * pw->psize - LP_PAGEHDR < dsize)
		rc = pw_damage(pw, ov, "overflow run shorter than its value");
	else
		rc = pw_range(pw, ov, ov, pages, "overflow run past the last page");
	if (rc == 0 && !pw->reaches)
		rc = pw_mark(pw, ov, pages);
out:
	return rc;
}

/* Keeps a named database's record for its walk after the main database's. */
static int pw_sub_add(struct pagewalk *pw, const struct pw_db *db)
{
	struct pw_db *grown;
	size_t cap = pw->subs_cap ? pw->subs_cap * 2 : 16;
	int rc = 0;

	/* No cap of its own: each record takes a node of 56 bytes in a main-database page. */
	if (pw->nsubs == pw->subs_cap) {
		grown = realloc(pw->subs, cap * sizeof *grown);
		if (grown == NULL) {
			rc = STORE_ENOMEM;
		} else {
			pw->subs = grown;
			pw->subs_cap = cap;
		}
	}
	if (rc == 0)
		pw->subs[pw->nsubs++] = *db;
	return rc;
}

/* A named database's record (F_SUBDATA) of dsize bytes at p, in main-database leaf pgno. */
static int pw_sub(struct pagewalk *pw, uint64_t pgno, const unsigned char *p, size_t dsize)
{
	struct pw_db db;
	int rc = 0;

	if (dsize != LP_DB_SIZE)
		rc = pw_damage(pw, pgno, "named database record not 48 bytes");
	if (rc == 0)
		pw_db_parse(p, pgno, &db);
	/* tokshim opens every database with flags 0; others change how LMDB compares keys
	 * (MDB_INTEGERKEY reads 4 or 8 bytes of any key) or lays out values (MDB_DUPSORT). */
	if (rc == 0 && db.flags != 0)
		rc = pw_damage(pw, pgno, "named database flags a store never has");
	if (rc == 0 && db.root != LP_INVALID)
		rc = pw_range(pw, pgno, db.root, 1, "named database root outside the file's pages");
	if (rc == 0 && !pw->reaches)
		rc = pw_sub_add(pw, &db);
	return rc;
}

/* A value in an overflow run: the run, and on the free list the ID list in it. */
static int pw_bigdata(struct pagewalk *pw, struct pw_tree *t, uint64_t pgno, uint64_t ov,
		      size_t dsize)
{
	int rc = pw_overflow(pw, t, pgno, ov, dsize);

	if (rc == 0 && !pw->reaches && t->kind == PW_FREE)
		rc = pw_idl(pw, pgno, NULL, ov, dsize);
	return rc;
}

/* Leaf node of tree t in page pgno at node, its data at offset data of the page. */
static int pw_leaf(struct pagewalk *pw, struct pw_tree *t, uint64_t pgno,
		   const unsigned char *node, size_t data)
{
	unsigned nflags = lp_u16(node + 4);
	unsigned allowed = LP_BIGDATA | (t->kind == PW_MAIN ? LP_SUBDATA : 0);
	size_t dsize = lp_dsize(node);
	const char *why = NULL;
	int rc = 0;

	if ((nflags & ~allowed) != 0 || nflags == (LP_BIGDATA | LP_SUBDATA))
		why = "node flags a store never has";
	else if (t->kind == PW_FREE && lp_u16(node + 6) != 8)
		why = "free-list key not 8 bytes"; /* a txnid: LMDB reads 8 bytes of it */
	else if ((nflags & LP_BIGDATA) && data + 8 > pw->psize)
		why = "overflow page number outside the page";
	else if (!(nflags & LP_BIGDATA) && dsize > pw->psize - data)
		why = "value outside the page";
	if (why != NULL)
		rc = pw_damage(pw, pgno, why);
	else if (nflags & LP_BIGDATA)
		rc = pw_bigdata(pw, t, pgno, lp_u64(pw->page + data), dsize);
	else if (nflags & LP_SUBDATA)
		rc = pw_sub(pw, pgno, pw->page + data, dsize);
	else if (t->kind == PW_FREE)
		rc = pw_idl(pw, pgno, pw->page + data, 0, dsize);
	return rc;
}

/* Branch node i of nkeys in the page of e: its child must exist; queued if it is walked. */
static int pw_branch(struct pagewalk *pw, struct pw_tree *t, const struct pw_entry *e,
		     const unsigned char *node, size_t i, size_t nkeys)
{
	uint64_t child = lp_child(node);
	uint32_t ends = (i == 0 ? e->ends & PW_LEFT : 0) | (i + 1 == nkeys ? e->ends & PW_RIGHT : 0);
	int rc = pw_range(pw, e->pgno, child, 1, "branch child outside the file's pages");

	if (rc == 0 && !pw->reaches && (!t->bounded || ends != 0))
		rc = pw_push(pw, child, e->level + 1, ends);
	return rc;
}

/* Node i of the page of e (nkeys nodes, upper its bound): inside the page, then its kind's. */
static int pw_node(struct pagewalk *pw, struct pw_tree *t, const struct pw_entry *e, size_t i,
		   size_t nkeys, size_t upper)
{
	const unsigned char *p = pw->page;
	size_t off = lp_u16(p + LP_PAGEHDR + 2 * i), ksize = 0;
	int rc = 0;

	if (off < upper || off + LP_NODEHDR > pw->psize)
		rc = pw_damage(pw, e->pgno, "node outside the page");
	if (rc == 0)
		ksize = lp_u16(p + off + 6);
	if (rc == 0 && (ksize > LP_KEY_MAX || off + LP_NODEHDR + ksize > pw->psize))
		rc = pw_damage(pw, e->pgno, "key outside the page");
	if (rc == 0 && lp_u16(p + LP_FLAGS_OFF) == LP_BRANCH)
		rc = pw_branch(pw, t, e, p + off, i, nkeys);
	else if (rc == 0)
		rc = pw_leaf(pw, t, e->pgno, p + off, off + LP_NODEHDR + ksize);
	return rc;
}

/*
 * The header of the page of e, in pw->page: its number, a branch or leaf at its level, bounds
 * in order, at least one node. *nkeys and *upper receive the node count and upper bound.
 */
static int pw_header(struct pagewalk *pw, struct pw_tree *t, const struct pw_entry *e,
		     size_t *nkeys, size_t *upper)
{
	const unsigned char *p = pw->page;
	unsigned flags = lp_u16(p + LP_FLAGS_OFF);
	size_t lower = lp_u16(p + LP_LOWER_OFF);
	const char *why = NULL;

	*upper = lp_u16(p + LP_UPPER_OFF);
	*nkeys = lower >= LP_PAGEHDR ? (lower - LP_PAGEHDR) / 2 : 0;
	if (lp_u64(p) != e->pgno)
		why = "page number differs from its place";
	else if (flags != LP_BRANCH && flags != LP_LEAF)
		why = "not a branch or leaf page";
	else if (lower < LP_PAGEHDR || lower > *upper || *upper > pw->psize)
		why = "page bounds out of order";
	else if (*nkeys == 0)
		why = "empty page";
	/* Leaves all lie at the depth the record gives: LMDB moves between siblings level by
	 * level, and takes what it finds at the leaves' level for a leaf. */
	else if (flags == LP_LEAF ? e->level != t->db->depth : e->level >= t->db->depth)
		why = "page at the wrong level for its tree's depth";
	return why != NULL ? pw_damage(pw, e->pgno, why) : 0;
}

/*
 * The root of a tree walked along its ends, with nkeys nodes. The record's page counts chose
 * that walk, so they must not lie: a tree of depth 1 or 2 shows at its root how many branch
 * and leaf pages it has (LMDB keeps the counts exact), and none counts more than the file.
 */
static int pw_root_counts(struct pagewalk *pw, struct pw_tree *t, uint64_t pgno, size_t nkeys)
{
	const struct pw_db *db = t->db;
	int bad = db->pages > pw->end;

	if (db->depth == 1)
		bad |= db->branch != 0 || db->leaf != 1;
	else if (db->depth == 2)
		bad |= db->branch != 1 || db->leaf != nkeys;
	return bad ? pw_damage(pw, pgno, "page counts of its record disagree with the tree") : 0;
}

/* Reads and parses the page of e, queueing the children to walk. */
static int pw_visit(struct pagewalk *pw, struct pw_tree *t, const struct pw_entry *e)
{
	size_t nkeys = 0, upper = 0;
	int rc;

	rc = pw_mark(pw, e->pgno, 1);
	if (rc == 0)
		rc = pw_count(pw, t, e->pgno);
	if (rc == 0)
		rc = pw_read(pw, e->pgno);
	if (rc == 0)
		rc = pw_header(pw, t, e, &nkeys, &upper);
	if (rc == 0 && t->bounded && e->level == 1)
		rc = pw_root_counts(pw, t, e->pgno, nkeys);
	for (size_t i = 0; i < nkeys && rc == 0 && !pw->reaches; i++)
		rc = pw_node(pw, t, e, i, nkeys, upper);
	return rc;
}

/* Walks the tree of db: whole, or along its two ends when it is a named one past the cap. */
static int pw_tree(struct pagewalk *pw, const struct pw_db *db, enum pw_kind kind)
{
	struct pw_tree t = { db, kind, kind == PW_NAMED && db->pages > pw->cap, 0 };
	struct pw_entry e;
	int rc = 0;

	if (db->root == LP_INVALID)
		goto out;
	pw->rep->trees++;
	pw->rep->bounded += (unsigned)t.bounded;
	if (db->depth < 1 || db->depth > LP_DEPTH_MAX)
		rc = pw_damage(pw, db->from, "tree depth out of range");
	if (rc == 0)
		rc = pw_range(pw, db->from, db->root, 1, "tree root outside the file's pages");
	if (rc == 0 && !pw->reaches)
		rc = pw_push(pw, db->root, 1, PW_LEFT | PW_RIGHT);
	while (rc == 0 && !pw->reaches && pw->n > 0) {
		e = pw->stack[--pw->n];
		rc = pw_visit(pw, &t, &e);
	}
	pw->n = 0;
out:
	return rc;
}

/* Parses meta page m (0 or 1) into *meta; 0, or STORE_EFORMAT when it is no meta page. */
static int pw_meta_read(struct pagewalk *pw, uint64_t m, struct pw_meta *meta)
{
	const unsigned char *p = pw->page;
	int rc = pw_read(pw, m);

	if (rc == 0 && (!(lp_u16(p + LP_FLAGS_OFF) & LP_META) ||
			lp_u32(p + LP_META_MAGIC_OFF) != LP_MAGIC))
		rc = pw_damage(pw, m, "not an LMDB meta page");
	if (rc == 0) {
		meta->pgno = m;
		meta->txnid = lp_u64(p + LP_META_TXNID);
		meta->last = lp_u64(p + LP_META_LAST);
		pw_db_parse(p + LP_META_DBS, m, &meta->free_db);
		pw_db_parse(p + LP_META_DBS + LP_DB_SIZE, m, &meta->main_db);
		memcpy(meta->raw, p + LP_META_DBS, sizeof meta->raw);
	}
	return rc;
}

/*
 * The meta to walk: of pages 0 and 1 that parse, the one of txnid (any: the later
 * transaction's, page 0 on a tie, as LMDB picks). STORE_EFORMAT when none fits.
 */
static int pw_meta_pick(struct pagewalk *pw, int any, uint64_t txnid, struct pw_meta *meta)
{
	struct pw_meta m[LP_NUM_METAS];
	int ok[LP_NUM_METAS], pick = -1, rc = 0;

	for (int i = 0; i < LP_NUM_METAS; i++)
		ok[i] = pw_meta_read(pw, (uint64_t)i, &m[i]) == 0;
	for (int i = 0; i < LP_NUM_METAS; i++) {
		if (ok[i] && (any ? pick < 0 || m[i].txnid > m[pick].txnid
				  : pick < 0 && m[i].txnid == txnid))
			pick = i;
	}
	if (pick < 0) {
		rc = pw_damage(pw, 0, "no meta page of the transaction");
	} else {
		*meta = m[pick];
		pw->rep->why = NULL;
		pw->rep->bad_pgno = 0;
	}
	return rc;
}

/*
 * One walk of the trees of *meta, in pw set up by pw_init with its limit: the free list, the
 * main database, then each named one (whose walks add no record to pw->subs: only the main
 * database's leaves may hold F_SUBDATA nodes, so the array stays where it is).
 */
static int pw_walk(struct pagewalk *pw, const struct pw_meta *meta)
{
	int rc = 0;

	pw->rep->txnid = meta->txnid;
	pw->rep->last_pgno = meta->last;
	/* LMDB keeps 48 bits of a page number in a branch node. */
	if (meta->last < LP_NUM_METAS - 1 || meta->last >= LP_PGNO_MAX)
		rc = pw_damage(pw, meta->pgno, "last page out of range");
	if (rc == 0) {
		pw->end = meta->last + 1;
		pw->limit = pw->limit < pw->end ? pw->limit : pw->end;
		pw->seen = calloc((size_t)(pw->limit / 64 + 1), sizeof *pw->seen);
		rc = pw->seen != NULL ? 0 : STORE_ENOMEM;
	}
	if (rc == 0)
		rc = pw_tree(pw, &meta->free_db, PW_FREE);
	if (rc == 0 && !pw->reaches)
		rc = pw_tree(pw, &meta->main_db, PW_MAIN);
	for (size_t i = 0; i < pw->nsubs && rc == 0 && !pw->reaches; i++)
		rc = pw_tree(pw, &pw->subs[i], PW_NAMED);
	return rc;
}

/* Sets up a walk; pw_release undoes it, whatever this returns. */
static int pw_init(struct pagewalk *pw, int fd, size_t psize, uint64_t cap,
		   struct pagewalk_report *rep)
{
	int rc = 0;

	memset(pw, 0, sizeof *pw);
	memset(rep, 0, sizeof *rep);
	pw->fd = fd;
	pw->psize = psize;
	pw->cap = cap;
	pw->rep = rep;
	/* Node offsets are 16 bits; LMDB's pages are 512 bytes to 64 KiB. */
	if (psize < 512 || psize > 65536)
		rc = pw_damage(pw, 0, "page size out of range");
	if (rc == 0) {
		pw->page = malloc(2 * psize);
		rc = pw->page != NULL ? 0 : STORE_ENOMEM;
	}
	if (rc == 0)
		pw->scratch = pw->page + psize;
	return rc;
}

static void pw_release(struct pagewalk *pw)
{
	free(pw->subs);
	free(pw->stack);
	free(pw->seen);
	free(pw->page);
}

/* Whether the meta a walk met damage under has changed since (a writer committed). */
static int pw_meta_changed(struct pagewalk *pw, const struct pw_meta *walked)
{
	struct pagewalk_report keep = *pw->rep;
	struct pw_meta now;
	int changed = pw_meta_pick(pw, 1, 0, &now) == 0 &&
		      memcmp(now.raw, walked->raw, sizeof now.raw) != 0;

	*pw->rep = keep;
	return changed;
}

int pagewalk_check(int fd, size_t psize, uint64_t cap, struct pagewalk_report *rep)
{
	struct pagewalk_report own;
	struct pagewalk pw;
	struct pw_meta meta;
	struct stat sb;
	int rc, attempt = 0, again;

	if (rep == NULL)
		rep = &own;
	do {
		rc = pw_init(&pw, fd, psize, cap, rep);
		if (rc == 0)
			rc = pw_meta_pick(&pw, 1, 0, &meta);
		/* The file's size after the meta: a writer extends the file before it writes the
		 * meta that counts the new pages. */
		if (rc == 0 && fstat(fd, &sb) != 0)
			rc = STORE_EIO;
		if (rc == 0) {
			pw.limit = (uint64_t)sb.st_size / psize;
			rc = pw_walk(&pw, &meta);
		}
		again = rc == STORE_EFORMAT && ++attempt < PW_ATTEMPTS && pw.page != NULL &&
			pw_meta_changed(&pw, &meta);
		pw_release(&pw);
	} while (again);
	return rc;
}

int pagewalk_reaches(int fd, size_t psize, uint64_t txnid, uint64_t limit, int *reaches)
{
	struct pagewalk_report rep;
	struct pagewalk pw;
	struct pw_meta meta;
	int rc;

	*reaches = 0;
	rc = pw_init(&pw, fd, psize, UINT64_MAX, &rep);
	if (rc == 0)
		rc = pw_meta_pick(&pw, 0, txnid, &meta);
	if (rc == 0) {
		pw.reaching = 1;
		pw.limit = limit;
		rc = pw_walk(&pw, &meta);
	}
	*reaches = pw.reaches;
	pw_release(&pw);
	return rc;
}
