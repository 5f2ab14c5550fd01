/*
 * lmdbpage.h - the bytes of an LMDB 0.9 page, as store/ reads them with pread rather than
 * through LMDB's map: to check a store before LMDB trusts it (pagewalk.c) and to read the
 * records of a report (leafscan.c).
 *
 * The layout is lmdb.h's and mdb.c's MDB_page, MDB_node, MDB_meta and MDB_db of LMDB 0.9 (the
 * data version every 0.9 release writes), in the machine's byte order as LMDB writes it, as a
 * tokshim store uses it: no duplicate-key databases.
 */
#ifndef TOKSHIM_LMDBPAGE_H
#define TOKSHIM_LMDBPAGE_H

#include <stdint.h>
#include <string.h>

/* MDB_page: pgno (8), pad (2), flags (2), lower (2), upper (2), then the node offsets; an
 * overflow page's count of pages is a u32 where lower and upper would be. */
#define LP_PAGEHDR 16
#define LP_FLAGS_OFF 10
#define LP_LOWER_OFF 12
#define LP_UPPER_OFF 14
#define LP_OVERFLOW_PAGES_OFF 12
#define LP_BRANCH 0x01
#define LP_LEAF 0x02
#define LP_OVERFLOW 0x04
#define LP_META 0x08
/* MDB_node: lo (2), hi (2), flags (2), key size (2), then the key and the data. A leaf's lo
 * and hi are its data size; a branch's lo, hi and flags its child's page number. */
#define LP_NODEHDR 8
#define LP_BIGDATA 0x01
#define LP_SUBDATA 0x02
/* LMDB's MDB_MAXKEYSIZE. */
#define LP_KEY_MAX 511
/* LMDB's CURSOR_STACK: a cursor holds 32 levels, so no tree is deeper. */
#define LP_DEPTH_MAX 32
/* Pages 0 and 1 are the meta pages. MDB_meta after the page header: magic, version, address,
 * map size, the free list's and the main database's MDB_db, last page, txnid. */
#define LP_NUM_METAS 2
#define LP_META_MAGIC_OFF 16
#define LP_MAGIC 0xBEEFC0DEu
#define LP_META_DBS 40
#define LP_META_LAST 136
#define LP_META_TXNID 144
#define LP_META_END 152
/* MDB_db: pad (4), flags (2), depth (2), branch, leaf and overflow pages, entries, root. */
#define LP_DB_SIZE 48
#define LP_DB_FLAGS 4
#define LP_DB_DEPTH 6
#define LP_DB_BRANCH 8
#define LP_DB_ROOT 40
/* P_INVALID: the root of an empty tree. */
#define LP_INVALID UINT64_MAX
/* Branch nodes hold 48 bits of a page number. */
#define LP_PGNO_MAX (1ull << 48)

static inline uint16_t lp_u16(const unsigned char *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof v);
	return v;
}

static inline uint32_t lp_u32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof v);
	return v;
}

static inline uint64_t lp_u64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof v);
	return v;
}

/* A branch node's child page number. */
static inline uint64_t lp_child(const unsigned char *node)
{
	return (uint64_t)lp_u16(node) | (uint64_t)lp_u16(node + 2) << 16 |
	       (uint64_t)lp_u16(node + 4) << 32;
}

/* A leaf node's data size. */
static inline uint32_t lp_dsize(const unsigned char *node)
{
	return (uint32_t)lp_u16(node) | (uint32_t)lp_u16(node + 2) << 16;
}

#endif
