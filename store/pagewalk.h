/*
 * pagewalk.h - an LMDB file's B-tree pages, read with pread rather than through LMDB's map,
 * and checked for what LMDB would trust blindly: store_open refuses a store whose pages do not
 * parse (pagewalk_check), and tells a file cut short from one short by free pages only
 * (pagewalk_reaches).
 */
#ifndef TOKSHIM_PAGEWALK_H
#define TOKSHIM_PAGEWALK_H

#include <stddef.h>
#include <stdint.h>

/*
 * The largest named database pagewalk_check walks whole, in pages (branch + leaf + overflow,
 * as its MDB_db record counts them); larger ones are walked along their two ends only.
 * Reading a page costs about 2 us from the page cache (the pread system call most of it), so
 * a database at the cap adds about 0.5 ms to a process's open of the store (measured: 12,000
 * records, records 207 pages and ids 154 walked whole, 0.6-0.9 ms). Under it stays every
 * database a store keeps small (meta, counters, budget reservations and events, the strings
 * of a few thousand names: a writer looks names up at random on its first append), and
 * every database of a store of a few thousand records. Past it are records, ids and strings
 * of a store that grows by millions of records (1.56 GB at 10M, 380,000 pages: a whole walk
 * takes 1.2 s warm, 19 s cold); records and ids grow only at their end, where a writer
 * appends (docs/record-format.md, "Opening, and what is refused").
 */
#define PAGEWALK_CAP 256

/* What pagewalk_check found. */
struct pagewalk_report {
	uint64_t txnid;     /* the transaction whose meta was walked */
	uint64_t last_pgno; /* that meta's last page */
	uint64_t pages;     /* pages read: branch and leaf pages, first pages of overflow runs */
	unsigned trees;     /* B-trees walked: the free list's, the main database's, named ones */
	unsigned bounded;   /* of the named ones, those walked along their two ends only */
	uint64_t bad_pgno;  /* on STORE_EFORMAT: the page where the damage was found */
	const char *why;    /* on STORE_EFORMAT: what is wrong there (static), else NULL */
};

/*
 * Checks the B-trees of the meta LMDB reads (of pages 0 and 1, the one of the later
 * transaction) in the LMDB file open on fd, pages of psize bytes, without mapping it. Every
 * page reached must parse as LMDB 0.9 writes it for a tokshim store: its number in its
 * header, a branch or leaf page (an overflow page where a value's run starts), lower and upper
 * bounds in order, nodes and keys (at most 511 bytes) inside the page, leaves at the depth the
 * tree's record gives, page numbers past the meta pages and before the meta's last page + 1
 * and the file's end, values inside the page or in an overflow run big enough for them,
 * named-database records of 48 bytes with flags 0, free-list values holding LMDB ID lists
 * whose count fits their size and whose pages exist; no page reached twice. The free list's
 * and main database's trees are walked whole, and each named database whose record counts at
 * most cap pages; a larger one along its last path (root to last leaf, where appends go) and
 * its first. Those counts must not lie: a tree walked whole within the cap, a record counting
 * no more pages than the file, and for a tree of depth 1 or 2 the branch and leaf pages its
 * root shows.
 *
 * The trees must not change during the walk: the caller holds a read transaction, or no
 * writer runs. Damage met in a walk whose meta has changed by its end (a writer committed)
 * is looked at again, from the new meta, up to three times.
 *
 * rep (may be NULL) is filled in either way. Returns 0; STORE_EFORMAT when a page does not
 * parse, a tree forms a cycle, or neither meta page parses (rep->why says what);
 * STORE_ENOMEM; STORE_EIO when fstat fails.
 */
int pagewalk_check(int fd, size_t psize, uint64_t cap, struct pagewalk_report *rep);

/*
 * Walks, as pagewalk_check with no cap, the trees of the meta of transaction txnid, in a file
 * shorter than that meta says: *reaches is set to 1 when a tree reaches page limit or later
 * (the walk stops there), else 0. Returns 0; STORE_EFORMAT when no meta has that txnid or a
 * page the trees reach before the limit does not parse; STORE_ENOMEM.
 */
int pagewalk_reaches(int fd, size_t psize, uint64_t txnid, uint64_t limit, int *reaches);

#endif
