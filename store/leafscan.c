/*
 * leafscan.c - a B-tree's entries in key order, read with pread (leafscan.h).
 *
 * The walk keeps the branch pages of its path, root first, one buffer a level, as an LMDB
 * cursor keeps its stack. Leaves are read in batches: the next LS_BATCH children of the
 * lowest branch page, in one pread of the span of pages between the lowest and highest of
 * them when that span is short (a store written in time order lays its leaves out mostly in
 * order, a few pages of other trees between them), else one pread each. A page is checked
 * whole before anything in it is used: its number, its kind, its bounds, every node and key
 * inside it, every page number it names inside the tree's pages.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/leafscan.h"
#include "store/lmdbpage.h"
#include "store/store.h"

/* Leaves read at once, and the longest span of pages one pread may cover for them. A span of
 * 256 pages (1 MiB at 4 KiB) costs a copy of about 100 us, so pages of other trees read along
 * with the leaves cost little next to a system call per leaf. */
#define LS_BATCH 64
#define LS_SPAN_MAX 256

struct leafscan {
	int fd;
	size_t psize;
	const struct leafscan_tree *t;
	size_t vmax;
	leafscan_fn fn;
	void *arg;
	const unsigned char *start; /* the first key wanted; NULL once the first leaf is read */
	size_t slen;
	unsigned char *level[LP_DEPTH_MAX]; /* the branch pages of the path, root first */
	size_t idx[LP_DEPTH_MAX];           /* the child of each being walked */
	size_t nkeys[LP_DEPTH_MAX];
	unsigned char *span; /* LS_SPAN_MAX pages: a batch of leaves */
	unsigned char *value; /* an overflow value with its first page's header */
	size_t value_cap;
};

/* Reads len bytes at offset off into buf: a short read is a page past the file's end. */
static int ls_pread(const struct leafscan *ls, void *buf, size_t len, uint64_t off)
{
	ssize_t got;
	int rc;

	do {
		got = pread(ls->fd, buf, len, (off_t)off);
	} while (got < 0 && errno == EINTR);
	if (got == (ssize_t)len)
		rc = 0;
	else
		rc = got < 0 ? STORE_EIO : STORE_EFORMAT;
	return rc;
}

/* Is pgno a page the tree may use (not a meta page, before its end)? */
static int ls_in_tree(const struct leafscan *ls, uint64_t pgno)
{
	return pgno >= LP_NUM_METAS && pgno < ls->t->end;
}

/*
 * Checks the page p read for pgno: its number, its kind (flags), its bounds, and every node:
 * inside the page with its key, a branch's child or a leaf's value inside the tree. *nkeys
 * receives its node count (at least 1). 0 or STORE_EFORMAT.
 */
static int ls_page(const struct leafscan *ls, const unsigned char *p, uint64_t pgno,
		   unsigned flags, size_t *nkeys)
{
	size_t lower = lp_u16(p + LP_LOWER_OFF), upper = lp_u16(p + LP_UPPER_OFF), off, data;
	unsigned nflags;
	int rc = STORE_EFORMAT;

	*nkeys = lower >= LP_PAGEHDR ? (lower - LP_PAGEHDR) / 2 : 0;
	if (lp_u64(p) != pgno || lp_u16(p + LP_FLAGS_OFF) != flags || lower < LP_PAGEHDR ||
	    lower > upper || upper > ls->psize || *nkeys == 0)
		goto out;
	for (size_t i = 0; i < *nkeys; i++) {
		off = lp_u16(p + LP_PAGEHDR + 2 * i);
		if (off < upper || off + LP_NODEHDR > ls->psize)
			goto out;
		data = off + LP_NODEHDR + lp_u16(p + off + 6);
		if (lp_u16(p + off + 6) > LP_KEY_MAX || data > ls->psize)
			goto out;
		if (flags == LP_BRANCH) {
			if (!ls_in_tree(ls, lp_child(p + off)))
				goto out;
			continue;
		}
		nflags = lp_u16(p + off + 4);
		if (nflags == LP_BIGDATA ? data + 8 > ls->psize || !ls_in_tree(ls, lp_u64(p + data))
					 : nflags != 0 || lp_dsize(p + off) > ls->psize - data)
			goto out;
	}
	rc = 0;
out:
	return rc;
}

/* LMDB's default key order: bytes, then the shorter first. */
static int ls_keycmp(const unsigned char *a, size_t alen, const unsigned char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	return c != 0 ? c : (alen > blen) - (alen < blen);
}

static const unsigned char *ls_node(const unsigned char *p, size_t i)
{
	return p + lp_u16(p + LP_PAGEHDR + 2 * i);
}

/* The index of the first node of page p (nkeys nodes) at or after ls->start: in a branch, the
 * child whose keys may hold it (node 0's key stands for everything below node 1's); in a leaf,
 * the first key not below it (nkeys when none). */
static size_t ls_seek(const struct leafscan *ls, const unsigned char *p, size_t nkeys, int leaf)
{
	size_t lo = leaf ? 0 : 1, hi = nkeys, mid;
	const unsigned char *node;

	/* the first node whose key is above start (branch) or not below it (leaf) */
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		node = ls_node(p, mid);
		if (leaf ? ls_keycmp(node + LP_NODEHDR, lp_u16(node + 6), ls->start, ls->slen) < 0
			 : ls_keycmp(node + LP_NODEHDR, lp_u16(node + 6), ls->start, ls->slen) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return leaf ? lo : lo - 1;
}

/* The value of a leaf node whose data is in the overflow run at ov: read with its first
 * page's header, which must say it is that run and long enough. */
static int ls_bigvalue(struct leafscan *ls, uint64_t ov, size_t dsize, const unsigned char **v)
{
	size_t need = LP_PAGEHDR + dsize;
	unsigned char *grown;
	uint32_t pages;
	int rc = STORE_EFORMAT;

	if (dsize > ls->vmax)
		goto out;
	if (need > ls->value_cap) {
		rc = STORE_ENOMEM;
		grown = realloc(ls->value, need);
		if (grown == NULL)
			goto out;
		ls->value = grown;
		ls->value_cap = need;
	}
	rc = ls_pread(ls, ls->value, need, ov * ls->psize);
	if (rc != 0)
		goto out;
	pages = lp_u32(ls->value + LP_OVERFLOW_PAGES_OFF);
	if (lp_u64(ls->value) != ov || lp_u16(ls->value + LP_FLAGS_OFF) != LP_OVERFLOW ||
	    (uint64_t)pages * ls->psize < need || pages > ls->t->end - ov)
		rc = STORE_EFORMAT;
	*v = ls->value + LP_PAGEHDR;
out:
	return rc;
}

/* Hands the entries of leaf page p (read for pgno) to fn, from ls->start on for the first. */
static int ls_leaf(struct leafscan *ls, const unsigned char *p, uint64_t pgno)
{
	const unsigned char *node, *v;
	size_t nkeys, i = 0, ksize, dsize;
	int rc = ls_page(ls, p, pgno, LP_LEAF, &nkeys);

	if (rc == 0 && ls->start != NULL) {
		i = ls_seek(ls, p, nkeys, 1);
		ls->start = NULL;
	}
	for (; i < nkeys && rc == 0; i++) {
		node = ls_node(p, i);
		ksize = lp_u16(node + 6);
		dsize = lp_dsize(node);
		v = node + LP_NODEHDR + ksize;
		if (lp_u16(node + 4) == LP_BIGDATA)
			rc = ls_bigvalue(ls, lp_u64(v), dsize, &v);
		else if (dsize > ls->vmax)
			rc = STORE_EFORMAT;
		if (rc == 0)
			rc = ls->fn(node + LP_NODEHDR, ksize, v, dsize, ls->arg);
	}
	return rc;
}

/* Reads and walks the leaves that are children [from, to) of branch page b (to - from at
 * most LS_BATCH). */
static int ls_batch(struct leafscan *ls, const unsigned char *b, size_t from, size_t to)
{
	uint64_t lo = UINT64_MAX, hi = 0, pg;
	size_t i;
	int rc = 0, spanned;

	for (i = from; i < to; i++) {
		pg = lp_child(ls_node(b, i));
		lo = pg < lo ? pg : lo;
		hi = pg > hi ? pg : hi;
	}
	spanned = hi - lo < LS_SPAN_MAX;
	if (spanned)
		rc = ls_pread(ls, ls->span, (size_t)(hi - lo + 1) * ls->psize, lo * ls->psize);
	for (i = from; i < to && rc == 0; i++) {
		pg = lp_child(ls_node(b, i));
		if (spanned) {
			rc = ls_leaf(ls, ls->span + (size_t)(pg - lo) * ls->psize, pg);
			continue;
		}
		rc = ls_pread(ls, ls->span, ls->psize, pg * ls->psize);
		if (rc == 0)
			rc = ls_leaf(ls, ls->span, pg);
	}
	return rc;
}

/* Reads the page pgno at level lv of the path (a branch) and positions it: at start while the
 * walk seeks it, else at its first child. */
static int ls_branch(struct leafscan *ls, unsigned lv, uint64_t pgno)
{
	int rc = ls_pread(ls, ls->level[lv], ls->psize, pgno * ls->psize);

	if (rc == 0)
		rc = ls_page(ls, ls->level[lv], pgno, LP_BRANCH, &ls->nkeys[lv]);
	if (rc == 0)
		ls->idx[lv] = ls->start != NULL ? ls_seek(ls, ls->level[lv], ls->nkeys[lv], 0) : 0;
	return rc;
}

/* Walks a tree of depth 2 or more: down to the lowest branch page, its leaves in batches,
 * then on to the next lowest branch page, as a cursor moves. */
static int ls_tree(struct leafscan *ls)
{
	unsigned low = ls->t->depth - 2, lv;
	size_t to;
	int rc = ls_branch(ls, 0, ls->t->root);

	for (lv = 1; lv <= low && rc == 0; lv++)
		rc = ls_branch(ls, lv, lp_child(ls_node(ls->level[lv - 1], ls->idx[lv - 1])));
	while (rc == 0) {
		for (; ls->idx[low] < ls->nkeys[low] && rc == 0; ls->idx[low] = to) {
			to = ls->idx[low] + LS_BATCH < ls->nkeys[low] ? ls->idx[low] + LS_BATCH
								       : ls->nkeys[low];
			rc = ls_batch(ls, ls->level[low], ls->idx[low], to);
		}
		/* up to the first level with a next child, then down its first children */
		for (lv = low; lv > 0 && ls->idx[lv - 1] + 1 >= ls->nkeys[lv - 1]; lv--)
			;
		if (rc != 0 || lv == 0)
			break;
		ls->idx[lv - 1]++;
		for (; lv <= low && rc == 0; lv++)
			rc = ls_branch(ls, lv, lp_child(ls_node(ls->level[lv - 1], ls->idx[lv - 1])));
	}
	return rc;
}

int leafscan_walk(int fd, size_t psize, const struct leafscan_tree *t, const unsigned char *start,
		  size_t slen, size_t vmax, leafscan_fn fn, void *arg)
{
	struct leafscan ls = { fd, psize, t, vmax, fn, arg, start, slen, { NULL }, { 0 }, { 0 },
			       NULL, NULL, 0 };
	unsigned lv;
	int rc = 0;

	if (t->root == LP_INVALID)
		goto out;
	rc = STORE_EFORMAT;
	if (t->depth < 1 || t->depth > LP_DEPTH_MAX || !ls_in_tree(&ls, t->root) ||
	    psize < LP_PAGEHDR + LP_NODEHDR || psize > 65536)
		goto out;
	rc = STORE_ENOMEM;
	ls.span = malloc(LS_SPAN_MAX * psize);
	for (lv = 0; lv + 1 < t->depth && ls.span != NULL; lv++) {
		ls.level[lv] = malloc(psize);
		if (ls.level[lv] == NULL)
			goto release;
	}
	if (ls.span == NULL)
		goto release;
	if (t->depth == 1) {
		rc = ls_pread(&ls, ls.span, psize, t->root * psize);
		if (rc == 0)
			rc = ls_leaf(&ls, ls.span, t->root);
	} else {
		rc = ls_tree(&ls);
	}
release:
	for (lv = 0; lv < LP_DEPTH_MAX; lv++)
		free(ls.level[lv]);
	free(ls.span);
	free(ls.value);
out:
	return rc;
}
