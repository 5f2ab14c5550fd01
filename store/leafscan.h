/*
 * leafscan.h - one B-tree's entries in key order, read from the file with pread into buffers
 * of its own rather than through LMDB's map: how store_scan reads records for a report.
 *
 * A report reads every record once. Through the map, each of the hundreds of thousands of
 * pages costs a page fault on first touch, and in a virtual machine a fault costs microseconds
 * (10M records, 1.2 GB of leaves: 47,000 faults, 0.7 s of system time, plus LMDB's cursor
 * stepping through each page's nodes). pread copies the same pages from the page cache at
 * memory speed, tens of leaves per call, and leaves nothing mapped behind (docs/PERFORMANCE.md,
 * figure 6). The layout is LMDB 0.9's (store/lmdbpage.h); each page is checked before it is
 * read from, so damage is an answer, never a wild read.
 *
 * The caller holds a read transaction of the tree's snapshot for the whole walk: LMDB reuses
 * no page a live reader's snapshot reaches, so the file holds exactly that snapshot's pages.
 */
#ifndef TOKSHIM_LEAFSCAN_H
#define TOKSHIM_LEAFSCAN_H

#include <stddef.h>
#include <stdint.h>

/* Called for each entry in key order; key and val are valid during the call only. Return 0
 * to go on; anything else stops the walk and is returned by leafscan_walk. */
typedef int (*leafscan_fn)(const unsigned char *key, size_t klen, const unsigned char *val,
			   size_t vlen, void *arg);

/* The tree of one database as the caller's snapshot records it. */
struct leafscan_tree {
	uint64_t root;  /* LP_INVALID for an empty tree */
	unsigned depth; /* 1 when the root is a leaf */
	uint64_t end;   /* one past the last page a tree may use (the meta's last page + 1) */
};

/*
 * Calls fn for every entry of tree t whose key is at least start[0..slen) (LMDB's byte order:
 * memcmp, then the shorter first), as an LMDB cursor positioned with MDB_SET_RANGE and moved
 * with MDB_NEXT would give them, reading the file open on fd in pages of psize bytes. A value
 * longer than vmax is damage. Returns 0, fn's non-zero value, STORE_EFORMAT for a page or
 * value that does not parse (or lies past the file's end), STORE_ENOMEM, or STORE_EIO.
 */
int leafscan_walk(int fd, size_t psize, const struct leafscan_tree *t, const unsigned char *start,
		  size_t slen, size_t vmax, leafscan_fn fn, void *arg);

#endif
