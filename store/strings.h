/*
 * strings.h - the store's string table: sub-database "strings" (store format 3).
 *
 * A store holds millions of records and a few thousand distinct names: agents, models,
 * providers, hosts, one session per process run. Version 5 records keep each such name once,
 * here, and refer to it by its number (its id), so that a record takes about 100 bytes
 * instead of 320 and a report reads a third of the pages (docs/PERFORMANCE.md). Two records of
 * a store that name the same string carry the same id, which also lets a report group by ids.
 *
 * Keys (docs/record-format.md): STRINGS_BY_ID ‖ be32(id) → the string's bytes, and
 * STRINGS_BY_NAME ‖ bytes → le32(id), in one database so that a new string dirties one
 * B-tree. Ids are 1, 2, 3 … in the order strings were first written; an id, once committed,
 * names its string for as long as the store lives (nothing deletes from the table).
 *
 * Writers: strings_intern finds or adds a string inside the caller's write transaction,
 * through a small cache of committed names (struct strings_cache) so that an append whose
 * names are known touches no B-tree for them. Interning is an optimisation a writer may
 * always skip: a string without an id is written inline in its record (too long, the table
 * full, no memory for the cache), and every reader reads both.
 *
 * Readers: struct strings_table maps ids to bytes for the life of a store handle, filled on
 * first use from whatever transaction meets an unknown id, and read by many threads at once
 * without a lock. The bytes it gives stay valid until strings_table_release.
 *
 * Errors are LMDB's codes (MDB_NOTFOUND, MDB_CORRUPTED …) or errno values (ENOMEM), which
 * store.c maps to STORE_E* codes like its own LMDB calls.
 */
#ifndef TOKSHIM_STRINGS_H
#define TOKSHIM_STRINGS_H

#include <lmdb.h>
#include <pthread.h>
#include <stdint.h>

#include "store/leafscan.h"
#include "store/record.h"
#include "store/strtab.h"

/* The two key spaces of the database. */
#define STRINGS_BY_ID 0x00
#define STRINGS_BY_NAME 0x01

/* The longest string given an id; longer ones stay inline (a name entry's key must fit
 * LMDB's 511-byte key, and readers hold every string they meet in memory). */
#define STRINGS_LEN_MAX 255

/* The last id given out; past it new strings stay inline. */
#define STRINGS_ID_MAX STRTAB_ID_MAX

/* ---- writers ------------------------------------------------------------------------------ */

/* Names a writer has committed (or met committed) and their ids: at most
 * STRINGS_CACHE_SLOTS / 2 of them, then it starts again empty. */
#define STRINGS_CACHE_SLOTS 1024

struct strings_cache_slot {
	uint64_t hash;
	uint32_t id; /* 0: empty slot */
	uint32_t n;
	char *p; /* owned copy of the name */
};

struct strings_cache {
	pthread_mutex_t lock; /* held by the write transaction using the cache (strings_txn) */
	struct strings_cache_slot *slot; /* STRINGS_CACHE_SLOTS, allocated on first use */
	size_t n;
};

/* Returns 0 or ENOMEM-like failure of the mutex (errno value). */
int strings_cache_init(struct strings_cache *c);
void strings_cache_release(struct strings_cache *c);

/*
 * One write transaction's use of the table and cache: set up with strings_txn_init before
 * its first strings_intern, ended with strings_txn_end once the transaction has committed or
 * aborted. The cache is locked from the first intern to the end, so that names this
 * transaction added are dropped again, unseen by other threads, when it does not commit.
 */
struct strings_txn {
	struct strings_cache *cache;
	MDB_dbi dbi;
	int held;         /* the cache's lock is held */
	int added;        /* this transaction wrote new strings */
	uint32_t next_id; /* the id the next new string gets; 0 until read */
};

void strings_txn_init(struct strings_txn *sx, struct strings_cache *c, MDB_dbi dbi);

/*
 * *id receives the id of the n bytes at p inside write transaction txn: the cached or stored
 * one, or a new one written to the table in txn. *id is 0 (the string stays inline) for an
 * empty or too long string, a full table, or a stored entry that is damaged. Returns 0, or an
 * LMDB code from a put (the transaction must then be aborted).
 */
int strings_intern(struct strings_txn *sx, MDB_txn *txn, const char *p, uint32_t n,
		   uint32_t *id);

/* Ends sx after its transaction committed (committed != 0) or aborted. */
void strings_txn_end(struct strings_txn *sx, int committed);

/* ---- readers ------------------------------------------------------------------------------ */

struct strings_block;

struct strings_table {
	struct strtab tab;    /* what record_decode reads */
	pthread_mutex_t lock; /* loading; lookups take none */
	struct strings_block *blocks; /* where the strings are copied, newest first */
	unsigned char *free;          /* the newest block's first unused byte */
	size_t room;                  /* and how many are left after it */
};

/* Returns 0 or an errno value. */
int strings_table_init(struct strings_table *t);
void strings_table_release(struct strings_table *t);

/* Where a read transaction's strings database lies in the file, for strings_resolve to read
 * it with pread (store/leafscan.h) rather than through LMDB's map. */
struct strings_pages {
	int fd;
	size_t psize;
	struct leafscan_tree tree;
};

/*
 * Resolves s->ref into s->p and s->n. Strings the table holds cost two loads (strtab_get).
 * Another, with from (the pages of a read transaction's strings database), is copied into t
 * for good, with the strings after it (a scan meets them next), read with pread: a report
 * meets thousands of sessions, and through the map each load would leave a fault's worth of
 * pages (64 KiB, most of them other trees') in its resident set. Without from (a write
 * transaction: what it wrote itself may yet be aborted), it is read from txn (dbi its strings
 * database) and s points into txn's pages, valid until txn ends. Returns 0; MDB_NOTFOUND for
 * an id the table does not hold (a damaged record); ENOMEM; MDB_CORRUPTED for pages that
 * do not parse; EIO.
 */
int strings_resolve(struct strings_table *t, MDB_txn *txn, MDB_dbi dbi,
		    const struct strings_pages *from, struct record_str *s);

/* Receives each problem strings_verify finds: one lowercase line, valid during the call. */
typedef void (*strings_problem_fn)(const char *problem, void *arg);

/*
 * Checks the table inside txn: every key is of one of the two kinds, every id entry has a
 * name entry that gives back its id and every name entry an id entry that gives back its
 * name, ids are 1 to STRINGS_ID_MAX, names 1 to STRINGS_LEN_MAX bytes. Calls fn once per
 * problem and tick once per entry (when not NULL). *entries receives the number of strings.
 * Returns 0 when the check ran to its end, else an LMDB code.
 */
int strings_verify(MDB_txn *txn, MDB_dbi dbi, strings_problem_fn fn, void (*tick)(void *),
		   void *arg, uint64_t *entries);

#endif
