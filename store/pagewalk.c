/*
 * pagewalk.c - does an LMDB file's current B-trees reach a page at or past a limit?
 *
 * LMDB counts in its meta page the pages a transaction allocated and freed again without ever
 * writing them ("loose" pages), so a writer killed between its commit and store_fill_tail
 * leaves a file shorter than the meta says, with nothing but free pages missing. A file cut
 * short by damage looks the same from the outside. Only the trees tell them apart: the first
 * loses no page any tree points to. The walk reads the file with pread, never through LMDB's
 * map, so a page past the end is an answer rather than SIGBUS.
 *
 * The layout read here is LMDB 0.9's (lmdb.h's MDB_page, MDB_node, MDB_meta, MDB_db), in the
 * machine's byte order as LMDB writes it. Anything that does not parse is damage.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/pagewalk.h"
#include "store/store.h"

/* MDB_page: pgno (8), pad (2), flags (2), lower (2), upper (2); an overflow page's count of
 * pages is a u32 where lower and upper would be. */
#define PW_PAGEHDR 16
#define PW_FLAGS_OFF 10
#define PW_LOWER_OFF 12
#define PW_OVERFLOW_PAGES_OFF 12
#define PW_BRANCH 0x01
#define PW_LEAF 0x02
#define PW_OVERFLOW 0x04
#define PW_LEAF2 0x20
/* MDB_node: lo (2), hi (2), flags (2), key size (2), then the key and the data. */
#define PW_NODEHDR 8
#define PW_BIGDATA 0x01
#define PW_SUBDATA 0x02
/* MDB_meta after the page header: magic, version, address, map size, the free and main
 * databases' MDB_db (48 bytes each, the root last), last page, txnid. */
#define PW_META_DBS 40
#define PW_DB_SIZE 48
#define PW_DB_ROOT 40
#define PW_META_TXNID 144
#define PW_INVALID UINT64_MAX

static uint16_t pw_u16(const unsigned char *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof v);
	return v;
}

static uint32_t pw_u32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof v);
	return v;
}

static uint64_t pw_u64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof v);
	return v;
}

struct pagewalk {
	int fd;
	size_t psize;
	uint64_t limit;
	unsigned char *page;
	uint64_t *stack;
	size_t n, cap;
	uint64_t visited;
	int reaches;
};

/* Reads page pgno into pw->page. Returns 0, or STORE_EFORMAT for a short read. */
static int pw_read(struct pagewalk *pw, uint64_t pgno)
{
	ssize_t got = pread(pw->fd, pw->page, pw->psize, (off_t)(pgno * pw->psize));

	return got == (ssize_t)pw->psize ? 0 : STORE_EFORMAT;
}

/* Queues a page to visit; one at or past the limit ends the walk. */
static int pw_push(struct pagewalk *pw, uint64_t pgno)
{
	uint64_t *grown;

	if (pgno == PW_INVALID)
		return 0;
	if (pgno >= pw->limit) {
		pw->reaches = 1;
		return 0;
	}
	if (pw->n == pw->cap) {
		/* The stack holds at most a tree's depth of pages' children: bounded by the file. */
		if (pw->cap >= pw->limit)
			return STORE_EFORMAT;
		grown = realloc(pw->stack, (pw->cap ? pw->cap * 2 : 256) * sizeof *grown);
		if (grown == NULL)
			return STORE_ENOMEM;
		pw->stack = grown;
		pw->cap = pw->cap ? pw->cap * 2 : 256;
	}
	pw->stack[pw->n++] = pgno;
	return 0;
}

/* An overflow run starting at pgno: every one of its pages must lie below the limit. Only its
 * first page's header is read, so the page in pw->page stays as it is. */
static int pw_overflow(struct pagewalk *pw, uint64_t pgno)
{
	unsigned char head[PW_PAGEHDR];
	uint32_t pages;

	if (pgno >= pw->limit) {
		pw->reaches = 1;
		return 0;
	}
	if (pread(pw->fd, head, sizeof head, (off_t)(pgno * pw->psize)) != (ssize_t)sizeof head)
		return STORE_EFORMAT;
	if (pw_u64(head) != pgno || !(pw_u16(head + PW_FLAGS_OFF) & PW_OVERFLOW))
		return STORE_EFORMAT;
	pages = pw_u32(head + PW_OVERFLOW_PAGES_OFF);
	if (pages == 0)
		return STORE_EFORMAT;
	if (pgno + pages > pw->limit)
		pw->reaches = 1;
	return 0;
}

/* Queues the children of the branch or leaf page in pw->page (number pgno). */
static int pw_page(struct pagewalk *pw, uint64_t pgno)
{
	const unsigned char *p = pw->page;
	uint16_t flags = pw_u16(p + PW_FLAGS_OFF), lower = pw_u16(p + PW_LOWER_OFF);
	size_t i, nkeys;
	int rc = 0;

	if (pw_u64(p) != pgno || lower < PW_PAGEHDR || lower > pw->psize)
		return STORE_EFORMAT;
	if (flags & PW_LEAF2)
		return 0; /* fixed-size keys, no children */
	if (!(flags & (PW_BRANCH | PW_LEAF)))
		return STORE_EFORMAT;
	nkeys = (size_t)(lower - PW_PAGEHDR) / 2;
	for (i = 0; i < nkeys && rc == 0 && !pw->reaches; i++) {
		size_t off = pw_u16(p + PW_PAGEHDR + 2 * i), ksize, dsize, data;
		const unsigned char *node = p + off;

		if (off < lower || off + PW_NODEHDR > pw->psize)
			return STORE_EFORMAT;
		ksize = pw_u16(node + 6);
		if (flags & PW_BRANCH) {
			rc = pw_push(pw, (uint64_t)pw_u16(node) | (uint64_t)pw_u16(node + 2) << 16 |
						 (uint64_t)pw_u16(node + 4) << 32);
			continue;
		}
		data = off + PW_NODEHDR + ksize;
		dsize = (size_t)pw_u16(node) | (size_t)pw_u16(node + 2) << 16;
		if (pw_u16(node + 4) & PW_BIGDATA) {
			if (data + 8 > pw->psize)
				return STORE_EFORMAT;
			rc = pw_overflow(pw, pw_u64(p + data));
		} else if (data + dsize > pw->psize) {
			return STORE_EFORMAT;
		} else if (pw_u16(node + 4) & PW_SUBDATA) {
			if (dsize < PW_DB_SIZE)
				return STORE_EFORMAT;
			rc = pw_push(pw, pw_u64(p + data + PW_DB_ROOT));
		}
	}
	return rc;
}

int pagewalk_reaches(int fd, size_t psize, uint64_t txnid, uint64_t limit, int *reaches)
{
	struct pagewalk pw = { fd, psize, limit, NULL, NULL, 0, 0, 0, 0 };
	const unsigned char *meta = NULL;
	int rc = STORE_ENOMEM;

	*reaches = 0;
	if (psize < 512 || limit < 2)
		return STORE_EFORMAT;
	pw.page = malloc(psize);
	if (pw.page == NULL)
		goto out;
	/* The meta LMDB reads: of pages 0 and 1, the one of the last transaction. */
	for (uint64_t m = 0; m < 2 && meta == NULL; m++) {
		rc = pw_read(&pw, m);
		if (rc == 0 && pw_u64(pw.page + PW_META_TXNID) == txnid)
			meta = pw.page;
	}
	rc = STORE_EFORMAT;
	if (meta == NULL)
		goto out;
	rc = pw_push(&pw, pw_u64(meta + PW_META_DBS + PW_DB_ROOT));
	if (rc == 0)
		rc = pw_push(&pw, pw_u64(meta + PW_META_DBS + PW_DB_SIZE + PW_DB_ROOT));
	while (rc == 0 && pw.n > 0 && !pw.reaches) {
		uint64_t pgno = pw.stack[--pw.n];

		/* Trees share no page: more visits than pages is a cycle, which is damage. */
		if (++pw.visited > limit)
			rc = STORE_EFORMAT;
		if (rc == 0)
			rc = pw_read(&pw, pgno);
		if (rc == 0)
			rc = pw_page(&pw, pgno);
	}
	*reaches = pw.reaches;
out:
	free(pw.stack);
	free(pw.page);
	return rc;
}
